// HTTP 5xx PCAP Export To S3
// Buffers the L4 streams of server errors and exports one merged PCAP per minute.
var selected = [];

function onItemCaptured(data) {
  if (data.protocol.name !== "http" || !data.response) return;
  if (data.response.status >= 500 && selected.indexOf(data.stream) === -1) {
    selected.push(data.stream);
  }
}

function exportErrors() {
  if (selected.length === 0) return;
  var streams = selected;
  selected = [];
  var dir = file.mkdirTemp("errors");
  try {
    var pcapFile = pcap.snapshot(streams);
    file.move(pcapFile, dir);
    file.write(dir + "/name_resolution_history.json", JSON.stringify(pcap.nameResolutionHistory()));
    file.write(dir + "/content.json", JSON.stringify({ l4_streams: streams, time: Date().toLocaleString() }));
    var tarFile = file.tar(dir);
    var url = vendor.s3.put(env.S3_BUCKET, tarFile, env.AWS_REGION, env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY);
    console.log("Exported", streams.length, "streams to", url);
    if (env.SLACK_WEBHOOK) vendor.slack(env.SLACK_WEBHOOK, "HTTP 5xx export", url, "#ff0000");
    file.delete(tarFile);
  } catch (e) {
    console.error("export failed:", e);
  } finally {
    file.delete(dir);
  }
}

jobs.schedule("export-5xx", "0 * * * * *", exportErrors);
