// Redact And Grade
// Dashboard-only: hides Authorization headers and colours 5xx rows red, others green.
function onItemQueried(data) {
  if (data.request && data.request.headers && data.request.headers["Authorization"]) {
    data.request.headers["Authorization"] = "[redacted]";
  }
  if (data.protocol.name === "http" && data.response && data.response.status >= 500) {
    return test.fail(data);
  }
  return test.pass(data);
}
