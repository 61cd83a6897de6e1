export {
  type KyselyAdapter,
  type KyselyAdapterOptions,
  type KyselyConnectionLike,
  type KyselyLike,
  kyselyAdapter,
  type PostgresjsSqlLike,
} from './kysely-adapter.js'
