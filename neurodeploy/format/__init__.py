"""The file formats: the artifact (.ndp), the Program it holds, npz conventions, conv geometry,
and atomic writes. A leaf: numpy, json and the standard library only, so the
Lava runner (its own Python 3.10) loads these modules as plain files."""
