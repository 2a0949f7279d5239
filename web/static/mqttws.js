// A minimal MQTT 3.1.1 subscriber over WebSockets (mosquitto's websockets
// listener): CONNECT, SUBSCRIBE at QoS 0, PUBLISH in, PINGREQ; nothing
// else. No library is loaded: the page loads no external assets.
"use strict";
(function () {
  const enc = new TextEncoder(), dec = new TextDecoder();
  function str(s) { const b = enc.encode(s); return [b.length >> 8, b.length & 255, ...b]; }
  function packet(type, body) {
    const len = []; let n = body.length;
    do { let d = n % 128; n = Math.floor(n / 128); if (n > 0) d |= 128; len.push(d); } while (n > 0);
    return new Uint8Array([type, ...len, ...body]);
  }
  // connect(url, topics, onMessage(topic, text, retained), onState(state))
  function connect(url, topics, onMessage, onState) {
    let ws, buf = new Uint8Array(0), ping, closed = false;
    const open = () => {
      ws = new WebSocket(url, "mqtt");
      ws.binaryType = "arraybuffer";
      ws.onopen = () => {
        const id = "edgemo-site-" + Math.random().toString(36).slice(2, 10);
        ws.send(packet(0x10, [...str("MQTT"), 4, 0x02, 0, 60, ...str(id)]));
        const subs = []; topics.forEach((t) => subs.push(...str(t), 0));
        ws.send(packet(0x82, [0, 1, ...subs]));
        ping = setInterval(() => ws.readyState === 1 && ws.send(new Uint8Array([0xc0, 0])), 30000);
      };
      ws.onmessage = (ev) => {
        const b = new Uint8Array(ev.data), all = new Uint8Array(buf.length + b.length);
        all.set(buf); all.set(b, buf.length); buf = all;
        for (;;) {
          if (buf.length < 2) return;
          let len = 0, mul = 1, i = 1, d;
          do { if (i >= buf.length) return; d = buf[i++]; len += (d & 127) * mul; mul *= 128; } while (d & 128);
          if (buf.length < i + len) return;
          const head = buf[0], body = buf.subarray(i, i + len);
          buf = buf.slice(i + len);
          const type = head >> 4;
          if (type === 2) onState(body[1] === 0 ? "live" : "refused");
          if (type === 3) {
            const tl = (body[0] << 8) | body[1], topic = dec.decode(body.subarray(2, 2 + tl));
            const off = 2 + tl + (((head >> 1) & 3) > 0 ? 2 : 0);
            onMessage(topic, dec.decode(body.subarray(off)), (head & 1) === 1);
          }
        }
      };
      ws.onclose = () => { clearInterval(ping); buf = new Uint8Array(0); if (!closed) { onState("reconnecting"); setTimeout(open, 1000); } };
    };
    open();
    return { close() { closed = true; ws.close(); } };
  }
  window.mqttws = { connect };
})();
