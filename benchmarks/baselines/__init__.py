"""The denoising methods SGDL is compared with, each trained under the same protocol as
SGDL (:mod:`sgdl_wrap.benchmarks.running.runner`): Normal, T-CE and R-CE (BCE models), DeCA,
WBPR, IR, and for the graph models SGCN and SGL-ED. Descriptions: ``../shared/BASELINES.md``."""
