// The native chat formatting of zipcache serve (programs/serve_template.c)
// against an independent renderer of the real templates: @huggingface/jinja
// renders each public template string of tests/js/chat_templates.json, and
// `zipcache serve --chat-template-file T --apply-template CONV` must print the
// same text for every conversation, or refuse it exactly where the template
// raises. Prints PASS/FAIL lines for tests/run.sh.
import { Template } from "@huggingface/jinja";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const fx = JSON.parse(readFileSync(join(here, "chat_templates.json"), "utf8"));
const bin = process.env.ZIPCACHE_BIN;
const model = process.env.ZIPCACHE_MODEL;
const dir = mkdtempSync(join(tmpdir(), "zc-tmpl-"));
let failed = 0;

function native(tmplFile, conv) {
    const f = join(dir, "conv.json");
    writeFileSync(f, JSON.stringify({ messages: conv }));
    try {
        return { text: execFileSync(bin, ["serve", "-m", model, "--chat-template-file", tmplFile, "--apply-template", f], {
            encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30000 }) };
    } catch (e) {
        return { error: String(e.stderr || e.message) };
    }
}

for (const [name, t] of Object.entries(fx.templates)) {
    const tmplFile = join(dir, name + ".jinja");
    writeFileSync(tmplFile, t.template);
    const jinja = new Template(t.template);
    const problems = [];
    let compared = 0;
    fx.conversations.forEach((conv, i) => {
        let want, raised = null;
        try {
            want = jinja.render({ messages: conv, bos_token: fx.bos_token, eos_token: fx.eos_token,
                add_generation_prompt: true }); // raise_exception is built in
        } catch (e) {
            raised = e.message;
        }
        const got = native(tmplFile, conv);
        const div = (fx.divergences || []).find((d) => d.template === name && d.case === i);
        if (div) { /* where @huggingface/jinja and Python's Jinja2 disagree, Python's result (stated) is expected */
            if (want === div.expected) problems.push(`case ${i}: the stated divergence is gone: update chat_templates.json`);
            want = div.expected;
        }
        if (raised !== null) {
            if (got.error === undefined || !got.error.includes(raised)) problems.push(`case ${i}: jinja raised "${raised}", native gave ${JSON.stringify(got)}`);
        } else if (got.text !== want) {
            problems.push(`case ${i}:\n    jinja  ${JSON.stringify(want)}\n    native ${JSON.stringify(got.text ?? got.error)}`);
        }
        compared++;
    });
    if (problems.length) {
        failed++;
        console.log(`FAIL template_${name}`);
        console.error(`  ${t.source}:\n  ` + problems.join("\n  "));
    } else {
        console.log(`PASS template_${name} (${compared} conversations, ${t.source})`);
    }
}
// a template of no known family is refused with its name
const unknown = join(dir, "unknown.jinja");
writeFileSync(unknown, "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}");
const r = native(unknown, [{ role: "user", content: "hi" }]);
if (r.error && r.error.includes("unknown chat template") && r.error.includes("--chat-template NAME")) console.log("PASS template_unknown_refused");
else { failed++; console.log("FAIL template_unknown_refused"); console.error("  " + JSON.stringify(r)); }
rmSync(dir, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
