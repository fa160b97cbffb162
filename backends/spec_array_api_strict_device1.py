from backends import Backend

REQUIREMENT = "array-api-strict>=2.1"  # the first release with its pseudo-devices


def _device1(strict):
    return strict.Device("device1")


def _probe(strict):
    """Why this array-api-strict cannot stand in for a second device, or None."""
    try:
        dev = _device1(strict)
    except Exception as exc:
        return (f"array-api-strict {strict.__version__} has no Device('device1') ({type(exc).__name__}: {exc}); "
                f"pip install '{REQUIREMENT}'")
    try:
        strict.asarray(1.0, device=dev) + strict.asarray(1.0)
    except ValueError:
        return None
    return f"array-api-strict {strict.__version__} combines arrays of two devices silently; pip install '{REQUIREMENT}'"


# array-api-strict with every test array and model on its pseudo-device
# "device1", not the default: mixing devices raises there, so any array the
# library creates on the default device fails, as it would for a model on a
# second GPU. The CPU stand-in for that case.
SPEC = Backend(
    name="array_api_strict_device1",
    module="array_api_strict",
    requirement=REQUIREMENT,
    dtypes=("float32", "float64"),
    writeable=False,
    benchmarked=False,
    device_factory=_device1,
    probe=_probe,
)
