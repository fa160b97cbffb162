from backends import Backend


def _probe(cupy):
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"CuPy is installed but no CUDA GPU is usable ({type(exc).__name__}: {exc})"
    return None if n > 0 else "CuPy is installed but this machine has no CUDA GPU"


def _sync(cupy):
    cupy.cuda.get_current_stream().synchronize()


SPEC = Backend(
    name="cupy",
    module="cupy",
    requirement="cupy-cuda12x",
    dtypes=("float32", "float64", "float16"),
    writeable=True,
    device_kind="cuda",
    sync=_sync,
    probe=_probe,
)
