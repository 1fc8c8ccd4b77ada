"""Who can walk to a facility: the road graph, walks along it, service areas, coverage per grid."""
