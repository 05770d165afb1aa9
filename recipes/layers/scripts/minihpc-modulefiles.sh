#!/bin/sh
# Writes Lmod modulefiles for the Python, SciPy stack and OpenMPI Debian installed, in
# /opt/modulefiles (listed in /etc/lmod/modulespath by the overlay).
set -eu
dir=/opt/modulefiles
py=$(python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
scipy=$(python3 -c 'import scipy; print(scipy.__version__)')
numpy=$(python3 -c 'import numpy; print(numpy.__version__)')
mpi4py=$(python3 -c 'import mpi4py; print(mpi4py.__version__)')
ompi=$(dpkg-query -W -f '${Version}' openmpi-bin | sed 's/-.*//')
module() { # NAME VERSION WHATIS [LOAD...]
  mkdir -p "$dir/$1"
  {
    echo "-- Debian's $1 $2, installed in /usr (imgbuild: layers/minihpc.yaml)"
    echo "whatis(\"$3\")"
    echo "help([[$3]])"
    shift 3
    for m in "$@"; do echo "depends_on(\"$m\")"; done
  } > "$dir/$1/$2.lua"
}
module Python "$py" "Python $py (python3), with pip and venv"
module OpenMPI "$ompi" "Open MPI $ompi: mpicc, mpirun, mpiexec; Slurm's srun starts its ranks (PMIx)"
module SciPy-bundle "$scipy" "NumPy $numpy and SciPy $scipy for Python $py" "Python/$py"
module mpi4py "$mpi4py" "mpi4py $mpi4py: MPI for Python" "Python/$py" "OpenMPI/$ompi"
ls -R "$dir"
