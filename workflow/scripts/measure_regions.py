# Rule measure_regions: region sizes per dataset (auto = mean box size); logic in localmer.preprocess.
import json

from localmer import preprocess, regions, runlog

with runlog.to_file(snakemake.log[0]):
    settings = snakemake.params.preprocessing
    table = regions.load_region_table(settings["regions"])
    sizes = preprocess.region_sizes(snakemake.input.aligned, table, settings["alignment"]["iod"])
    with open(snakemake.output[0], "w") as handle:
        json.dump(sizes, handle, indent=2)
