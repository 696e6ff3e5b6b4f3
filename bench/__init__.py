"""bench: latency and accuracy of every artifact in manifest.json.

TF-free by design: imports only numpy, ai-edge-litert, onnxruntime (and the
TF-free edgekd core), so `pip install .[runtime]` runs it on a Pi or Jetson.
"""
