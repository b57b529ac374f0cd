zipcache bench -m /tmp/zipcache-llama-3.2-1b-16l-q8_0.gguf -p 4096 -n 1 -d 0 --kv fp16,zipcache,q4_0,q8_0 -r 2
