"""Running project binaries under Open MPI's mpirun from the test suite.

Tests import this module (tests/tap.py runs each test file with its own
folder on sys.path): `mpi_env()` for the environment, `mpirun_missing()` for
a skip reason."""
import os
import shutil


def mpi_env():
    """Environment for mpirun from the test suite: as root (CI is), shared
    memory between the local ranks only. Leak checking is off under mpirun:
    Open MPI's plugins (dlopen'd, some unloaded again) keep start-up
    allocations that LeakSanitizer cannot attribute, so no suppression can
    name them; the same code runs leak-checked in the one-process tests."""
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_btl="self,vader", OMPI_MCA_btl_vader_single_copy_mechanism="none",
               OMPI_MCA_plm_rsh_agent="", OMPI_MCA_rmaps_base_oversubscribe="1",
               OMPI_MCA_mca_base_component_disable_dlclose="1")
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0"
    env.pop("CMOCKA_MESSAGE_OUTPUT", None)
    return env


def mpirun_missing():
    """None when mpirun is usable, else the reason a test should skip."""
    if not shutil.which("mpirun"):
        return "mpirun not installed (Debian openmpi-bin; `make deps` installs it)"
    return None
