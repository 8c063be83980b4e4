"""Helpers the tests share: random NIR graphs (nir_gen), fuzz cases, an independent limits checker,
an accuracy bound and the pinned emulation digests."""
