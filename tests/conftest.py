import os

from hypothesis import HealthCheck, settings

# Kernels are fast but the NumPy twins loop in Python: keep examples modest, never time them.
settings.register_profile("default", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "default")
