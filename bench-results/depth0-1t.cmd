zipcache bench -m /tmp/zipcache-llama-3.2-1b-16l-q8_0.gguf -p 16 -n 32 -d 0 --kv fp16 -r 3 -t 1 --md bench-results/depth0-1t.md
