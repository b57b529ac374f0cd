// The official openai npm client drives zipcache serve: completions, chat,
// streaming of both, models, and an error the client must surface as a 400.
// The server runs on 127.0.0.1 and a free port, and is killed at the end.
// Prints PASS/FAIL lines for tests/run.sh.
import OpenAI from "openai";
import { spawn } from "node:child_process";

const bin = process.env.ZIPCACHE_BIN, model = process.env.ZIPCACHE_MODEL;
const server = spawn(bin, ["serve", "-m", model, "--port", "0", "-t", "1", "--parallel", "2", "-c", "512",
    "--chat-template", "chatml", "--kv", "zipcache"], { stdio: ["ignore", "ignore", "pipe"] });
let log = "";
const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("server did not start: " + log)), 20000);
    server.stderr.on("data", (d) => {
        log += d;
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
        if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    server.on("exit", (code) => reject(new Error(`server exited ${code}: ${log}`)));
});
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "unused", timeout: 60000, maxRetries: 0 });
let failed = 0;
async function test(name, fn) {
    try {
        await fn();
        console.log(`PASS openai_${name}`);
    } catch (e) {
        failed++;
        console.log(`FAIL openai_${name}`);
        console.error(`  ${e.stack || e}`);
    }
}
function assert(cond, what) { if (!cond) throw new Error(what); }

await test("models", async () => {
    const list = await client.models.list();
    assert(list.data.length === 1 && typeof list.data[0].id === "string", JSON.stringify(list.data));
});
await test("completion", async () => {
    const r = await client.completions.create({ model: "m", prompt: "Once upon a time", max_tokens: 12, temperature: 0 });
    assert(typeof r.choices[0].text === "string" && r.choices[0].text.length > 0, JSON.stringify(r));
    assert(r.usage.completion_tokens === 12 && r.choices[0].finish_reason === "length", JSON.stringify(r));
});
await test("chat", async () => {
    const r = await client.chat.completions.create({ model: "m", messages: [{ role: "system", content: "Tell stories." },
        { role: "user", content: "A story about a cat, please." }], max_tokens: 10, temperature: 0.5, seed: 3 });
    const m = r.choices[0].message;
    assert(m.role === "assistant" && typeof m.content === "string", JSON.stringify(r));
    assert(r.usage.prompt_tokens > 10 && r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens, JSON.stringify(r.usage));
});
await test("chat_stream", async () => {
    const stream = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Hello" }],
        max_tokens: 10, temperature: 0, stream: true });
    let text = "", finish = null, chunks = 0;
    for await (const c of stream) {
        chunks++;
        text += c.choices[0]?.delta?.content ?? "";
        finish = c.choices[0]?.finish_reason ?? finish;
    }
    assert(chunks >= 3 && finish !== null, `chunks ${chunks}, finish ${finish}`);
    const whole = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Hello" }],
        max_tokens: 10, temperature: 0 });
    assert(whole.choices[0].message.content === text, `stream "${text}" vs whole "${whole.choices[0].message.content}"`);
});
await test("completion_stream", async () => {
    const stream = await client.completions.create({ model: "m", prompt: "The dog", max_tokens: 8, temperature: 0, stream: true });
    let text = "";
    for await (const c of stream) text += c.choices[0]?.text ?? "";
    const whole = await client.completions.create({ model: "m", prompt: "The dog", max_tokens: 8, temperature: 0 });
    assert(text === whole.choices[0].text && text.length > 0, `"${text}" vs "${whole.choices[0].text}"`);
});
await test("error_400", async () => {
    try {
        await client.completions.create({ model: "m", prompt: "x", n: 3 });
    } catch (e) {
        assert(e instanceof OpenAI.BadRequestError && e.status === 400 && /n = 1/.test(e.message), String(e));
        return;
    }
    throw new Error("n = 3 was accepted");
});
server.kill("SIGTERM");
await new Promise((r) => server.on("exit", r));
process.exit(failed ? 1 : 0);
