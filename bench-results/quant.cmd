zipcache bench quant -t 1
