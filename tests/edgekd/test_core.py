"""The TF-free core: format table, preprocessing, manifest schema, runtime I/O."""

import numpy as np
import pytest

from edgekd import manifest as mf
from edgekd.errors import EdgekdError
from edgekd.formats import FORMATS, parse_formats
from edgekd.preprocess import Preprocessing, spread_indices
from edgekd.runtime import _dequantize, _quantize, open_runner


def test_every_format_has_a_converter_and_a_runtime():
    from distill.convert import CONVERTERS
    assert set(CONVERTERS) == set(FORMATS)
    assert {f.runtime for f in FORMATS.values()} == {"tflite", "onnx"}
    assert all(f.quantized == f.precision.startswith("int8") for f in FORMATS.values())


def test_parse_formats():
    assert parse_formats(None) == list(FORMATS)
    assert parse_formats("onnx_int8, tflite_fp32") == ["tflite_fp32", "onnx_int8"]  # table order
    with pytest.raises(EdgekdError, match="unknown format.s. tflite_int4; valid formats: tflite_fp32"):
        parse_formats("tflite_int4")


def test_preprocessing_apply_and_check():
    pre = Preprocessing(4, 4, 3)
    x = np.full((2, 4, 4, 3), 255, np.uint8)
    out = pre.apply(x)
    assert out.dtype == np.float32 and np.allclose(out, 1.0)
    assert Preprocessing.from_dict(pre.to_dict()) == pre
    with pytest.raises(EdgekdError, match=r"have shape \(2, 5, 4, 3\), expected \(N, 4, 4, 3\)"):
        pre.apply(np.zeros((2, 5, 4, 3), np.uint8))
    with pytest.raises(EdgekdError, match="1 or 3 channels"):
        Preprocessing(4, 4, 2)


def test_int8_io_quantization_round_trip():
    q = {"scale": 1 / 255, "zero_point": -128}
    pixels = np.arange(256, dtype=np.float32) / 255
    codes = _quantize(pixels, q, np.dtype(np.int8))
    np.testing.assert_array_equal(codes, np.arange(256) - 128)  # exact for [0, 1] inputs
    np.testing.assert_allclose(_dequantize(codes, q), pixels, atol=1e-6)
    assert _quantize(np.array([5.0]), q, np.dtype(np.int8))[0] == 127  # saturates


def test_manifest_validation_names_the_field():
    with pytest.raises(EdgekdError, match="invalid manifest at schema_version"):
        mf.validate({"schema_version": 99, "edgekd_version": "x", "versions": {},
                     "dataset": {"name": "d", "labels": ["a", "b"]},
                     "preprocessing": {}, "eval": {}, "references": {}, "artifacts": []})


def test_sha256(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert mf.sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_runner_errors(tmp_path):
    bad = tmp_path / "m.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(EdgekdError, match="cannot load TFLite model"):
        open_runner(bad, "tflite")
    with pytest.raises(EdgekdError, match="cannot load ONNX model"):
        open_runner(bad, "onnx")
    with pytest.raises(EdgekdError, match="unknown runtime 'tvm'"):
        open_runner(bad, "tvm")


def test_spread_indices_cover_the_whole_set():
    np.testing.assert_array_equal(spread_indices(10, 3), [0, 4, 9])  # 0, 4.5 -> 4 (even), 9
    np.testing.assert_array_equal(spread_indices(5, None), np.arange(5))
    np.testing.assert_array_equal(spread_indices(5, 50), np.arange(5))
    labels = np.repeat(np.arange(10), 1000)  # a test set stored class by class
    assert len(set(labels[spread_indices(len(labels), 256)])) == 10


def test_int8_features_read_x86_flags_and_arm_features():
    from edgekd.environment import int8_features
    x86 = ("processor\t: 0\nmodel name\t: Some Xeon\n"
           "flags\t\t: fpu sse avx2 fma avx512f avx512_vnni amx_tile amx_int8\n")
    assert int8_features(x86) == ["avx2", "avx512f", "avx512_vnni", "amx_int8"]
    epyc = "flags\t\t: fpu avx avx2 fma\n"  # the AMD host of earlier runs: no VNNI
    assert int8_features(epyc) == ["avx2"]
    pi5 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32 atomics asimddp\nCPU part\t: 0xd0b\n"
    assert int8_features(pi5) == ["asimd", "asimddp"]
    assert int8_features("") == []
    # a flag that only starts like a known one is not that one
    assert int8_features("flags\t: avx2x avx512f_fake\n") == []


def test_train_report_and_manifest_schemas_cover_every_field(mini_exported):
    """Every field distill and export write is in a schema: the real files
    validate with no unknown field allowed, and a new field is named."""
    import json

    from edgekd import manifest as mf
    from edgekd import train_report
    report = train_report.load(mini_exported)
    manifest = mf.load(mini_exported)
    with pytest.raises(EdgekdError, match="invalid train_report.json at .top level.: Additional "
                                          "properties are not allowed .'extra' was unexpected"):
        train_report.validate({**report, "extra": 1})
    bad_role = json.loads(json.dumps(report))
    bad_role["models"]["coach"] = bad_role["models"]["student"]
    with pytest.raises(EdgekdError, match="invalid train_report.json at models"):
        train_report.validate(bad_role)
    with pytest.raises(EdgekdError, match="invalid manifest at artifacts/0: Additional properties"):
        mf.validate({**manifest, "artifacts": [{**manifest["artifacts"][0], "note": "x"}]})


def test_roles_table():
    from edgekd.roles import DEFAULT_EXPORT, QAT_ROLES, ROLES, is_distilled_student, model_file
    assert list(ROLES) == ["teacher", "student", "student_scratch", "student_pruned",
                           "student_qat", "student_pruned_qat"]
    assert QAT_ROLES == ("student_qat", "student_pruned_qat")
    assert model_file("student_qat") == "student_qat.h5" and model_file("teacher") == "teacher.keras"
    assert "student_scratch" not in DEFAULT_EXPORT and "student_pruned" in DEFAULT_EXPORT
    assert [r for r in ROLES if is_distilled_student(r)] == [
        "student", "student_pruned", "student_qat", "student_pruned_qat"]
