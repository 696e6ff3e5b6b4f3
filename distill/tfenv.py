"""Import TensorFlow the way edgekd needs it: Keras 2 (tf_keras), because
tensorflow-model-optimization (QAT, pruning) does not work under Keras 3.
Every module that needs TF imports it from here, so the user's shell never
has to set TF_USE_LEGACY_KERAS."""

import os

from edgekd.quiet import native_stderr_muted

os.environ["TF_USE_LEGACY_KERAS"] = "1"
# TensorFlow's C++ log lines (cuInit failures on machines without a GPU, grappler
# notes) are noise to a user; set TF_CPP_MIN_LOG_LEVEL=0 to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


with native_stderr_muted():  # CUDA probing lines, printed before TF reads its log level
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras"]
