// A Node.js verifying gateway for benches/gateway.rs: verifies Standard Webhooks deliveries
// with the `standardwebhooks` npm package and forwards them with the built-in fetch (undici,
// keep-alive pool), passing the upstream's status and body back.
//
//   node gateway.js PORT UPSTREAM_URL SECRET_BASE64 NODE_MODULES_DIR
"use strict";
const http = require("node:http");
const { createRequire } = require("node:module");

const [port, upstream, secret, modules] = process.argv.slice(2);
const { Webhook } = createRequire(modules + "/")("standardwebhooks");
const webhook = new Webhook(secret);
const HOP_BY_HOP = new Set([
  "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer",
  "transfer-encoding", "upgrade", "host", "content-length",
]);

http
  .createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      try {
        webhook.verify(body, req.headers, { jsonParse: false });
      } catch {
        res.writeHead(401);
        res.end();
        return;
      }
      const headers = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (!HOP_BY_HOP.has(name)) headers[name] = value;
      }
      try {
        const answer = await fetch(upstream, { method: "POST", body, headers });
        const out = Buffer.from(await answer.arrayBuffer());
        res.writeHead(answer.status);
        res.end(out);
      } catch {
        res.writeHead(502);
        res.end();
      }
    });
  })
  .listen(Number(port), "127.0.0.1", function () {
    console.log("listening on 127.0.0.1:" + this.address().port);
  });
