zipcache bench quant -t 1 --json bench-results/quant.json
