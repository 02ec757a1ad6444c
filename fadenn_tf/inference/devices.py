"""The `device=` of prediction checked against the devices TensorFlow sees here: a device that
does not exist is an error naming those that do (TensorFlow itself would silently place the
model elsewhere, or raise its own parser's ValueError for a name like "cuda")."""
import tensorflow as tf


class DeviceError(ValueError):
    """The requested device does not exist on this machine (or is no device name)."""


def check_device(device):
    """`device` ("/CPU:0", "/GPU:1", "cpu", "GPU:0", ...) -> its canonical name "/CPU:0".

    A name without an index means index 0. Raises DeviceError naming the devices that exist
    when the name cannot be parsed or names no logical device of this machine."""
    devices = [d.name.replace("/device:", "/") for d in tf.config.list_logical_devices()]
    known = ", ".join(devices) or "none"
    try:
        spec = tf.DeviceSpec.from_string(str(device))
    except ValueError:
        raise DeviceError(f"device {device!r}: not a TensorFlow device name; this machine "
                          f"has {known}") from None
    if spec.device_type is None:
        raise DeviceError(f"device {device!r}: no device type (CPU or GPU) in it; this "
                          f"machine has {known}")
    name = f"/{spec.device_type.upper()}:{spec.device_index or 0}"
    if name not in devices:
        raise DeviceError(f"device {device!r}: no such device on this machine; it has "
                          f"{known}")
    return name
