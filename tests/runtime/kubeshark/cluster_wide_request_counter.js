// Cluster Wide Request Counter
// Workers send per-node counters to the hub; the hub merges and prints them.
var scriptId = "cluster-wide-request-counter";
var local = {};
var merged = {};

function onItemCaptured(data) {
  var key = (data.dst && data.dst.name) || "external";
  local[key] = (local[key] || 0) + 1;
}

function onHubAction(action, object) {
  if (action !== scriptId) return;
  merged = wrapper.joinMaps(merged, object);
}

if (utils.nodeName() === "hub") {
  jobs.schedule("hub-report", "*/30 * * * * *", function () {
    console.clear();
    console.log(utils.json2Yaml(JSON.stringify(merged)));
  });
} else {
  jobs.schedule("worker-push", "*/10 * * * * *", function () {
    hub.action(scriptId, local);
    local = {};
  });
}
