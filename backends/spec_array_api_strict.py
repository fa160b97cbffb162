from backends import Backend

# The reference implementation of the standard: no float16, no extras, so it
# catches code that only works because NumPy is lenient. Its arrays have no
# in-place contract the library may rely on.
SPEC = Backend(
    name="array_api_strict",
    module="array_api_strict",
    requirement="array-api-strict>=2.3",
    dtypes=("float32", "float64"),
    writeable=False,
)
