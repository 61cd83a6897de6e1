export {
  type PostgresInstanceLike,
  type PostgresjsAdapter,
  type PostgresjsAdapterOptions,
  type PostgresSqlLike,
  postgresjsAdapter,
} from './postgresjs-adapter.js'
