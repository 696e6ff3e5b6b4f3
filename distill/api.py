"""The one door into distill for the other stages: export converts and
checks the Keras models of an artifacts folder with these, and nothing else."""

from distill.models import check_io, count_macs
from distill.optimize import load
from distill.tfenv import keras, tf

__all__ = ["check_io", "count_macs", "keras", "load", "tf"]
