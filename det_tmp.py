import os, sys, time, json
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np
import tensorflow as tf
if sys.argv[1] == "det":
    tf.config.experimental.enable_op_determinism()
from distill.config import resolve
from distill.run import run
from tests.conftest import small_npz
from pathlib import Path
import tempfile
root = Path(tempfile.mkdtemp())
data = small_npz(root / "d.npz", n_train=1200, n_test=300, shape=(16, 16, 3))
accs = []
for i in range(2):
    t = time.time()
    cfg = resolve("quick", data=str(data), teacher_arch="tiny_teacher",
                  student_arch="edge_res_x0.25_p4", teacher_epochs=2, epochs=4,
                  learning_rate=1e-2, train_subset=None, calib_size=8, batch_size=32,
                  jit_compile=sys.argv[2] == "xla", augment=True, teacher_cache_views=1, scratch=True)
    rep = run(cfg, root / f"a{i}", verbose=0)
    accs.append({k: v["accuracy"] for k, v in rep["models"].items()})
    print(i, time.time() - t, accs[-1], flush=True)
print("SAME" if accs[0] == accs[1] else "DIFFERENT")
