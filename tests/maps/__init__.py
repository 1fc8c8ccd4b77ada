"""Tests of maps/: rendered folium HTML, read back."""
