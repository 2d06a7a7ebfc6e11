package train

// barTemplate is the training progress bar (cheggaaa/pb/v3): steps, loss
// and rate, elapsed time and the estimated time left. pb's rtime element
// shows the elapsed time once the bar has finished, so its finished form
// reads "done in ...", not "ETA".
const barTemplate = `{{counters . }} {{bar . }} {{percent . }} {{string . "info"}} {{etime . "%s elapsed"}}, {{rtime . "%s left" "done in %s" "? left"}}`
