from backends import Backend

SPEC = Backend(
    name="numpy",
    module="numpy",
    requirement="numpy>=1.26",
    dtypes=("float32", "float64", "float16"),
)
