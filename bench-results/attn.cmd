zipcache bench attn -d 4096,16384,32768 --csv bench-results/attn.csv
