from sgdl_wrap.benchmarks.cli import main

main()
