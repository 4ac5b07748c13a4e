// HTTP 5xx Logger

// Prints one line per HTTP response with a 5xx status and marks the item failed (test.fail);
// every other HTTP item is marked passed (test.pass). At most HTTP_5XX_LOG_LIMIT lines a minute
// (env, default 5): the rest are counted and reported by a job at the top of each minute.

var LOG_LIMIT = parseInt(env.HTTP_5XX_LOG_LIMIT || "5", 10);
var printed = 0;
var suppressed = 0;

function onItemCaptured(data) {
  if (data.protocol.name !== "http" || !data.response) return;
  if (data.response.status < 500) {
    test.pass(data);
    return;
  }
  test.fail(data);
  if (printed >= LOG_LIMIT) {
    suppressed++;
    return;
  }
  printed++;
  console.log(
    data.response.status, data.request.method, data.request.url,
    "client " + data.src.ip + ":" + data.src.port,
    "server " + data.dst.ip + ":" + data.dst.port,
    "stream " + data.stream
  );
}

function reportSuppressed() {
  if (suppressed > 0) {
    console.log(suppressed + " more 5xx responses in the last minute (HTTP_5XX_LOG_LIMIT=" + LOG_LIMIT + ")");
  }
  printed = 0;
  suppressed = 0;
}

jobs.schedule("http-5xx-logger", "0 * * * * *", reportSuppressed);
