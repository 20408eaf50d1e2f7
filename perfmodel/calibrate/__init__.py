"""Calibrate the roofline's efficiency factors against kernels measured on this device.

* :mod:`~perfmodel.calibrate.pipeline`: the whole run (``perfmodel calibrate``; its
  options: :func:`perfmodel.commands.calibrate.add_arguments`) and error tables;
* :mod:`~perfmodel.calibrate.fit`: the dataset, the held-apart split and the fit (the
  loss is described there);
* :mod:`~perfmodel.calibrate.host`: the device, and the host CPU's figures measured from
  the kernels;
* :mod:`~perfmodel.calibrate.files`: calibration files and the measured host's catalog
  file.
"""

from perfmodel.calibrate.files import CACHE_DIR as CACHE_DIR
from perfmodel.calibrate.files import DEFAULT_HOST_CATALOG as DEFAULT_HOST_CATALOG
from perfmodel.calibrate.files import DEFAULT_HOST_KEY as DEFAULT_HOST_KEY
from perfmodel.calibrate.files import load_host_chip as load_host_chip
from perfmodel.calibrate.files import save_efficiency as save_efficiency
from perfmodel.calibrate.files import write_host_catalog as write_host_catalog
from perfmodel.calibrate.fit import HUBER_DELTA as HUBER_DELTA
from perfmodel.calibrate.fit import STATS as STATS
from perfmodel.calibrate.fit import Dataset as Dataset
from perfmodel.calibrate.fit import abs_pct_error as abs_pct_error
from perfmodel.calibrate.fit import fit_efficiency as fit_efficiency
from perfmodel.calibrate.fit import log_loss as log_loss
from perfmodel.calibrate.fit import make_dataset as make_dataset
from perfmodel.calibrate.fit import measured_s as measured_s
from perfmodel.calibrate.fit import predict_s as predict_s
from perfmodel.calibrate.fit import split_mask as split_mask
from perfmodel.calibrate.host import GPU_CHIPS as GPU_CHIPS
from perfmodel.calibrate.host import DeviceInfo as DeviceInfo
from perfmodel.calibrate.host import chip_for_device as chip_for_device
from perfmodel.calibrate.host import cpu_model as cpu_model
from perfmodel.calibrate.host import detect_device as detect_device
from perfmodel.calibrate.host import host_memory_bytes as host_memory_bytes
from perfmodel.calibrate.host import host_spec_from_results as host_spec_from_results
from perfmodel.calibrate.host import last_level_cache_bytes as last_level_cache_bytes
from perfmodel.calibrate.pipeline import RUN_SETTINGS as RUN_SETTINGS
from perfmodel.calibrate.pipeline import error_table as error_table
from perfmodel.calibrate.pipeline import run as run
from perfmodel.hardware import PRECISIONS as PRECISIONS
from perfmodel.roofline import efficiency_from_dict as efficiency_from_dict
from perfmodel.roofline import efficiency_to_dict as efficiency_to_dict
from perfmodel.roofline import load_calibration as load_calibration
from perfmodel.roofline import load_efficiency as load_efficiency

__all__ = [
    "PRECISIONS",
    "Dataset",
    "DeviceInfo",
    "abs_pct_error",
    "detect_device",
    "efficiency_from_dict",
    "efficiency_to_dict",
    "fit_efficiency",
    "host_spec_from_results",
    "load_calibration",
    "load_efficiency",
    "load_host_chip",
    "make_dataset",
    "predict_s",
    "run",
    "save_efficiency",
    "split_mask",
    "write_host_catalog",
]
