// upstream.mjs — a small OpenAI-compatible upstream on Node's own HTTP/1.1 server, for
// tests/integration/test_upstream_node.py: another HTTP implementation than the mock's, with
// another framing (chunked for every reply, a reply written in several pieces) and a short
// keep-alive timeout (idle connections are closed after KEEPALIVE_MS, as servers do).
// Prints "port=N" once listening. Model names pick the reply: "big" sends a long text, anything
// else "Hello from node."; a streamed request gets one chunk per word.
import http from 'node:http';

const KEEPALIVE_MS = 200;

function completion(model, text) {
  return {
    id: 'chatcmpl-node', object: 'chat.completion', created: 1700000000, model,
    choices: [{index: 0, message: {role: 'assistant', content: text}, finish_reason: 'stop'}],
    usage: {prompt_tokens: 3, completion_tokens: text.split(' ').length,
            total_tokens: 3 + text.split(' ').length},
  };
}

function chunk(model, delta, finish) {
  return 'data: ' + JSON.stringify({
    id: 'chatcmpl-node', object: 'chat.completion.chunk', created: 1700000000, model,
    choices: [{index: 0, delta, finish_reason: finish}],
  }) + '\n\n';
}

// Node's own keepAliveTimeout is coarse (whole seconds on some versions): the idle timer is
// ours. A connection idle for KEEPALIVE_MS after a reply is closed.
function idleAfter(req, res) {
  const sock = req.socket;
  clearTimeout(sock.gfIdle);
  res.on('finish', () => { sock.gfIdle = setTimeout(() => sock.destroy(), KEEPALIVE_MS); });
}

const server = http.createServer((req, res) => {
  idleAfter(req, res);
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    if (req.method === 'GET' && req.url === '/v1/models') {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({object: 'list', data: [{id: 'node-model', object: 'model'}]}));
      return;
    }
    let j;
    try {
      j = JSON.parse(body);
    } catch (e) {
      res.statusCode = 400;
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({error: {message: 'invalid JSON', type: 'invalid_request_error'}}));
      return;
    }
    const model = j.model || 'node-model';
    const text = model === 'big' ? Array.from({length: 30000}, (_, i) => 'w' + i).join(' ')
                                 : 'Hello from node.';
    if (j.stream) {
      res.writeHead(200, {'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache'});
      const words = text.split(' ');
      let i = 0;
      const next = () => {
        if (i < words.length) {
          res.write(chunk(model, {content: (i ? ' ' : '') + words[i]}, null));
          i++;
          setImmediate(next);
          return;
        }
        res.write(chunk(model, {}, 'stop'));
        res.end('data: [DONE]\n\n');
      };
      next();
      return;
    }
    const s = JSON.stringify(completion(model, text));
    res.setHeader('Content-Type', 'application/json');
    const third = Math.floor(s.length / 3);
    res.write(s.slice(0, third));
    setTimeout(() => { res.write(s.slice(third, 2 * third)); res.end(s.slice(2 * third)); }, 2);
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write('port=' + server.address().port + '\n');
});
