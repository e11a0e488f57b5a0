"""The shared core: what every other package may import and which imports none of them
(settings now; one Turn type and typed turn metadata are to follow)."""
