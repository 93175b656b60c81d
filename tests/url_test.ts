import assert from "node:assert/strict";
import { redactUrl, redactUrlsInText } from "../src/_url.ts";

Deno.test("redactUrl drops user info and query values, however the credential is written", async (t) => {
  const cases: Array<[string, string]> = [
    ["https://AKIA:secret@s3.example/", "https://[redacted]@s3.example/"],
    ["https://token@s3.example", "https://[redacted]@s3.example/"],
    ["https://:pw@s3.example", "https://[redacted]@s3.example/"],
    ["https://u:p@ss@s3.example", "https://[redacted]@s3.example/"],
    ["https://u:p%40ss@s3.example", "https://[redacted]@s3.example/"],
    ["http://127.0.0.1:9000/?token=SECRET", "http://127.0.0.1:9000/?[redacted]"],
    ["http://u:p@h/?t=1#frag", "http://[redacted]@h/?[redacted]#frag"],
    ["http://127.0.0.1:9000", "http://127.0.0.1:9000"],
  ];
  for (const [input, shown] of cases) {
    await t.step(input, () => assert.equal(redactUrl(input), shown));
  }
});

Deno.test("redactUrlsInText finds user info in free text but leaves stack-trace file URLs alone", () => {
  assert.equal(
    redactUrlsInText(
      "at runCommand (file:///work/node_modules/.deno/@stricli+core/dist/index.js:1)",
    ),
    "at runCommand (file:///work/node_modules/.deno/@stricli+core/dist/index.js:1)",
  );
  assert.equal(
    redactUrlsInText("Cannot reach https://tok@host/ or https:tok2@h2"),
    "Cannot reach https://[redacted]@host/ or https:[redacted]@h2",
  );
});
