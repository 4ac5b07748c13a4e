// KFL Recorder
// Copies the PCAP of every stream matching env.RECORDING_KFL and uploads a merged archive every hour.
var folder = "kfl_recorder";
var seen = [];
var ACTIVE = env.RECORDING_KFL && kfl.validate(env.RECORDING_KFL);

if (ACTIVE) {
  file.delete(folder);
  file.mkdir(folder);
  console.log("Recording traffic matching:", env.RECORDING_KFL);
} else {
  console.error("RECORDING_KFL is missing or invalid");
}

function onItemCaptured(data) {
  if (!ACTIVE || seen.indexOf(data.stream) !== -1) return;
  if (kfl.match(env.RECORDING_KFL, data)) {
    seen.push(data.stream);
    try {
      file.copy(pcap.path(data.stream), folder + "/" + data.stream);
    } catch (e) {
      console.error("PCAP already gone:", data.stream, e);
    }
  }
}

function flush() {
  if (seen.length === 0) return;
  var batch = "kfl_recorder_batch";
  file.delete(batch);
  file.move(folder, batch);
  file.mkdir(folder);
  seen = [];
  var merged = pcap.snapshot([], batch);
  file.delete(batch);
  vendor.s3.put(env.S3_BUCKET, merged, env.AWS_REGION);
  vendor.s3.put(env.S3_BUCKET, "name_resolution_history.json", env.AWS_REGION);
  file.delete(merged);
}

jobs.schedule("kfl-recorder", "0 0 * * * *", flush);
