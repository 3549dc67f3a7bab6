"""The neural-texture walkthrough: the fish's texture as an NGSSF texture field, queried once per pixel with that
pixel's footprint covariance, against the GL filters and a supersampled reference."""
