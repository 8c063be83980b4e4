"""Everything that produces NIR: the norse exporter, the ONNX reader, ANN-to-SNN conversion."""
