// The oracle for the differential URL test: what Node.js itself makes of each string.
// stdin: {"inputs": [...], "default_scheme": "http" | null}; stdout: one result per input,
// {scheme, host, port} or null when `new URL()` throws. A non-special URL's opaque host is
// read as a host the way the resolver that receives it reads it (WHATWG host parsing).
"use strict";
const SPECIAL = new Set(["http:", "https:", "ws:", "wss:", "ftp:"]);
const request = JSON.parse(require("fs").readFileSync(0, "utf8"));
const results = request.inputs.map((raw) => {
  let text = raw;
  if (request.default_scheme && !raw.includes("://")) {
    text = `${request.default_scheme}://${raw.replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, "")}`;
  }
  try {
    const url = new URL(text);
    let host = url.hostname;
    if (!SPECIAL.has(url.protocol) && host) {
      host = new URL(`http://${host}`).hostname;
    }
    return {
      scheme: url.protocol.slice(0, -1),
      host,
      port: url.port === "" ? null : Number(url.port),
      credentials: url.username !== "" || url.password !== "",
    };
  } catch (error) {
    return null;
  }
});
process.stdout.write(JSON.stringify(results));
