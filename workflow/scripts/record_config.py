# Rule record_config: the experiment's configuration as run (defaults filled, overrides merged).
import yaml

from localmer import runlog

with runlog.to_file(snakemake.log[0]), open(snakemake.output[0], "w") as handle:
    yaml.safe_dump(snakemake.params.config, handle, sort_keys=False)
