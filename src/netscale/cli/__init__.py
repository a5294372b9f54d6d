"""The thin command-line layer over netscale's packages."""
