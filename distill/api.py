"""The one door between stages: export imports distill only through here (to
load, check and convert the Keras models of an artifacts folder), bench
imports no stage, and distill imports no other stage. What every stage shares
without TensorFlow (timing loop, formats, manifest) lives in edgekd/.
tests/test_boundaries.py fails when another import between stages appears.

Conversion lives on distill's side of the door because both stages run it:
export writes every format with it, and --student-ms times zoo candidates
converted the same way."""

from distill.convert import CONVERTERS, Inputs
from distill.models import check_io, count_macs
from distill.optimize import load
from distill.tfenv import keras, tf

__all__ = ["CONVERTERS", "Inputs", "check_io", "count_macs", "keras", "load", "tf"]
