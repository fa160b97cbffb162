from backends import Backend


def _probe(cupy):
    """None when CuPy computes here; otherwise why not. A device count alone
    passes where cuBLAS or NVRTC is missing or does not match the driver, so
    this also runs a matrix product (cuBLAS) and a reduction (a kernel
    compiled at run time by NVRTC) and checks their numbers."""
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"CuPy is installed but no CUDA GPU is usable ({type(exc).__name__}: {exc})"
    if n == 0:
        return "CuPy is installed but this machine has no CUDA GPU"
    try:
        a = cupy.asarray([[1.0, 2.0], [3.0, 4.0]])
        product = (a @ a).get().tolist()     # cuBLAS
        total = float(cupy.sum(a * a).get())  # an elementwise and a reduction kernel (NVRTC)
    except Exception as exc:
        return (f"CuPy sees {n} GPU(s) but cannot compute there ({type(exc).__name__}: {exc}); "
                f"is the wheel (cupy-cuda12x or cupy-cuda13x) the one for this machine's CUDA major version?")
    if product != [[7.0, 10.0], [15.0, 22.0]] or total != 30.0:
        return f"CuPy computed wrong numbers on the GPU: a @ a = {product}, sum(a * a) = {total}"
    return None


def _sync(cupy):
    cupy.cuda.get_current_stream().synchronize()


SPEC = Backend(
    name="cupy",
    module="cupy",
    # one wheel per CUDA major version, matching the machine's driver:
    # extras ".[gpu-cuda12]" (also ".[gpu]") and ".[gpu-cuda13]"
    requirement="cupy-cuda12x",
    alternatives=("cupy-cuda13x",),
    dtypes=("float32", "float64", "float16"),
    writeable=True,
    device_kind="cuda",
    sync=_sync,
    probe=_probe,
)
