FROM node:20-slim
WORKDIR /srv
RUN npm install --omit=dev logfunnel pino
COPY app.mjs .
CMD ["node", "app.mjs"]
