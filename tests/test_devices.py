"""A device that does not exist is an error naming the devices that do (never a silent
fall-back to the CPU, never TensorFlow's raw parser error)."""
import pytest
import tensorflow as tf

import fadenn_tf
from fadenn_tf.cli import predict
from fadenn_tf.inference.devices import DeviceError, check_device

from test_predict import constant_shape_model, crop_shape

HAS_GPU = bool(tf.config.list_logical_devices("GPU"))


def test_existing_devices_are_named_canonically():
    assert check_device("/CPU:0") == "/CPU:0"
    assert check_device("cpu") == "/CPU:0"
    assert check_device("/device:CPU:0") == "/CPU:0"


@pytest.mark.parametrize("name, problem", [
    ("/GPU:99", "no such device on this machine; it has /CPU:0"),
    ("/CPU:3", "no such device on this machine; it has /CPU:0"),
    ("cuda", "not a TensorFlow device name; this machine has /CPU:0")])
def test_a_missing_device_names_the_existing_ones(name, problem):
    with pytest.raises(DeviceError, match=problem.replace("(", r"\(")):
        check_device(name)


@pytest.mark.skipif(HAS_GPU, reason="needs a machine without a GPU")
def test_gpu_on_a_cpu_only_machine_fails_in_load_and_predict(tmp_path, capsys):
    model = constant_shape_model(tmp_path / "m.keras", crop_shape())
    with pytest.raises(DeviceError, match="'/GPU:0': no such device"):
        fadenn_tf.load(str(model), device="/GPU:0", backend="keras")
    img = tmp_path / "a.png"
    img.write_bytes(b"")  # never read: the device is checked first
    assert predict.main([str(img), "--model", str(model), "--out", str(tmp_path / "o"),
                         "--device", "cuda", "--backend", "keras"]) == 2
    assert "device 'cuda': not a TensorFlow device name" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
