"""Elder care: device datums (GCJ-02, BD-09), OsmAnd/Traccar reports, safe zones."""
