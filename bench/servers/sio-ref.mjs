// Reference (b): the same job done the usual Socket.IO 4 way: a room per channel
// and io.to(room).emit('message.new', ...). Events carry the same names and
// payloads as Parley's; only the framing is Socket.IO's (42["event",data]).
import { Server } from 'socket.io';
import { userFromRequest, channels, joinByName, dmOf, conversationOf, validateSend, makeMessage, sessionReady, httpServer } from './common.mjs';

const server = httpServer();
const io = new Server(server, {
  serveClient: false,
  transports: ['websocket'], // Parley is WebSocket only; no long-polling upgrade dance
  maxHttpBufferSize: 65536,
  pingInterval: 30_000,
});

io.use((socket, next) => {
  const user = userFromRequest(socket.request);
  if (!user) return next(new Error('unauthorized'));
  socket.data.user = user;
  next();
});

io.on('connection', (socket) => {
  const user = socket.data.user;
  socket.join(`user:${user.username}`); // direct messages go to both users' rooms
  socket.on('message.send', (d) => {
    const err = validateSend(d);
    if (err) return socket.emit('error', err);
    const dm = d.channelId === undefined;
    const ch = dm ? dmOf(user.username, d.to) : channels.get(d.channelId);
    if (!ch || !(dm || socket.rooms.has(ch.id))) return socket.emit('error', { code: 'forbidden', message: 'not a member', clientMsgId: d.clientMsgId });
    const message = makeMessage(ch, user, d);
    socket.emit('message.ack', { clientMsgId: d.clientMsgId, message, duplicate: false });
    io.to(dm ? ch.users.map((u) => `user:${u}`) : ch.id).emit('message.new', { message });
  });
  socket.on('channel.join', (d) => {
    if (typeof d?.name !== 'string') return socket.emit('error', { code: 'invalid_payload', message: 'name required' });
    const ch = joinByName(d.name);
    socket.join(ch.id);
    socket.emit('channel.joined', { conversation: conversationOf(ch) });
  });
  socket.on('ping', () => socket.emit('pong', { serverTime: new Date().toISOString() }));
  socket.emit('session.ready', sessionReady(user));
});

server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
