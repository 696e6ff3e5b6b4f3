"""edgekd: the TF-free core shared by the three stages (distill, export, bench).

Everything in this package imports only numpy and the standard library at
module level, so that `bench/` (which runs on a Raspberry Pi or Jetson with
`pip install .[runtime]`) can use it without TensorFlow.
"""

__version__ = "0.1.0"
