zipcache bench -m /tmp/zipcache-llama-3.2-1b-16l-q8_0.gguf -p 16 -n 16 -d 16384 --kv fp16,zipcache -r 6
