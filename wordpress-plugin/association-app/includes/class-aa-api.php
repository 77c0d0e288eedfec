<?php
/**
 * The sync API (contract v1): REST routes in the namespace association-app/v1, the same routes
 * under {home}/api/v1/sync/ through a rewrite rule, the key check, the rate limit and the
 * response headers every answer carries.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

class AA_Api {

	const QUERY_VAR            = 'association_sync_route';
	const MAX_BODY_BYTES       = 1048576;
	const MAX_INLINE_DELETIONS = 100; // contract 1.1, §5.6
	const MAX_INCLUDE          = 100; // contract 1.2, §5.7

	public static function init() {
		add_action( 'init', array( __CLASS__, 'add_rewrite_rules' ) );
		add_filter( 'query_vars', array( __CLASS__, 'query_vars' ) );
		add_action( 'parse_request', array( __CLASS__, 'parse_request' ), 0 );
		add_action( 'rest_api_init', array( __CLASS__, 'register_routes' ) );
		add_filter( 'rest_pre_dispatch', array( __CLASS__, 'no_options' ), 20, 3 );
		add_filter( 'rest_request_before_callbacks', array( __CLASS__, 'before_callbacks' ), 0, 3 );
		add_filter( 'rest_post_dispatch', array( __CLASS__, 'post_dispatch' ), 10, 3 );
	}

	public static function add_rewrite_rules() {
		add_rewrite_rule( '^api/v1/sync/(.*)$', 'index.php?' . self::QUERY_VAR . '=$matches[1]', 'top' );
	}

	public static function query_vars( $vars ) {
		$vars[] = self::QUERY_VAR;
		return $vars;
	}

	private static function ours( $request ) {
		$route = $request->get_route();
		return '/' . ASSOCIATION_APP_NAMESPACE === $route || 0 === strpos( $route, '/' . ASSOCIATION_APP_NAMESPACE . '/' );
	}

	// ------------------------------------------------------------------ /api/v1/sync/ dispatch

	/**
	 * {home}/api/v1/sync/{route}: dispatched internally to /association-app/v1/{route} with
	 * rest_do_request() (§2.1), so both URL families share one implementation.
	 */
	public static function parse_request( $wp ) {
		if ( ! isset( $wp->query_vars[ self::QUERY_VAR ] ) ) {
			return;
		}
		if ( ! defined( 'DONOTCACHEPAGE' ) ) {
			define( 'DONOTCACHEPAGE', true );
		}
		if ( ! defined( 'REST_REQUEST' ) ) {
			define( 'REST_REQUEST', true );
		}
		$route  = trim( (string) $wp->query_vars[ self::QUERY_VAR ], '/' );
		$server = rest_get_server();
		$method = isset( $_SERVER['REQUEST_METHOD'] ) ? strtoupper( sanitize_text_field( wp_unslash( $_SERVER['REQUEST_METHOD'] ) ) ) : 'GET';
		if ( 'POST' === $method && ! empty( $_SERVER['HTTP_X_HTTP_METHOD_OVERRIDE'] ) ) {
			$method = strtoupper( sanitize_text_field( wp_unslash( $_SERVER['HTTP_X_HTTP_METHOD_OVERRIDE'] ) ) );
		}
		$request = new WP_REST_Request( $method, '/' . ASSOCIATION_APP_NAMESPACE . ( '' === $route ? '' : '/' . $route ) );
		$request->set_query_params( wp_unslash( $_GET ) ); // phpcs:ignore WordPress.Security.NonceVerification
		$request->set_headers( $server->get_headers( wp_unslash( $_SERVER ) ) );
		$request->set_body( WP_REST_Server::get_raw_data() );

		$response = rest_do_request( $request );
		// A rest_pre_dispatch filter (ours for OPTIONS, or another plugin's) can hand back a
		// bare WP_Error; serve_request() converts those, and so must we before the
		// rest_post_dispatch filters, which expect a response object.
		$response = is_wp_error( $response ) ? rest_convert_error_to_response( $response ) : rest_ensure_response( $response );
		$response = apply_filters( 'rest_post_dispatch', $response, $server, $request );

		status_header( $response->get_status() );
		header( 'Content-Type: application/json; charset=' . get_option( 'blog_charset' ) );
		foreach ( $response->get_headers() as $name => $value ) {
			header( $name . ': ' . $value );
		}
		echo wp_json_encode( $response->get_data() ); // phpcs:ignore WordPress.Security.EscapeOutput
		exit;
	}

	// ------------------------------------------------------------------ routes

	public static function register_routes() {
		$ns = ASSOCIATION_APP_NAMESPACE;
		register_rest_route(
			$ns,
			'/ping',
			array(
				'methods'             => 'GET',
				'callback'            => self::guarded( array( __CLASS__, 'ping' ) ),
				'permission_callback' => '__return_true', // the key check runs in before_callbacks (§2.3)
			)
		);
		register_rest_route(
			$ns,
			'/push',
			array(
				'methods'             => 'POST',
				'callback'            => self::guarded( array( 'AA_Push', 'subscribe' ) ),
				'permission_callback' => '__return_true',
			)
		);
		register_rest_route(
			$ns,
			'/deletions',
			array(
				'methods'             => 'GET',
				'callback'            => self::guarded( array( __CLASS__, 'deletions' ) ),
				'permission_callback' => '__return_true',
				'args'                => self::paging_args() + array(
					'since' => array(
						'type'              => 'string',
						'validate_callback' => array( __CLASS__, 'validate_gmt' ),
					),
				),
			)
		);
		// Only the enabled entity types get routes: a disabled one answers rest_no_route (§4).
		foreach ( AA_Settings::entity_types() as $entity ) {
			$endpoint = AA_Settings::ENTITY_ENDPOINTS[ $entity ];
			register_rest_route(
				$ns,
				'/' . $endpoint,
				array(
					'methods'             => 'GET',
					'callback'            => self::guarded(
						function ( $request ) use ( $entity ) {
							return AA_Api::list_items( $entity, $request );
						}
					),
					'permission_callback' => '__return_true',
					'args'                => self::paging_args() + array(
						'modified_after' => array(
							'type'              => 'string',
							'validate_callback' => array( __CLASS__, 'validate_gmt' ),
						),
						'after_id'       => array(
							'type'              => 'integer',
							'minimum'           => 0,
							'validate_callback' => array( __CLASS__, 'validate_after_id' ),
						),
						// Contract 1.1 (§5.6): the type's deletions come with the page.
						'deleted_since'  => array(
							'type'              => 'string',
							'validate_callback' => array( __CLASS__, 'validate_gmt' ),
						),
						// Contract 1.2 (§5.7): the change log after this number comes with
						// the page; `include` lists the records it named.
						'changes_after'  => array(
							'type'              => 'integer',
							'minimum'           => 0,
							'validate_callback' => 'rest_validate_request_arg',
						),
						'include'        => array(
							'type'              => 'string',
							'validate_callback' => array( __CLASS__, 'validate_include' ),
						),
					),
				)
			);
			register_rest_route(
				$ns,
				'/' . $endpoint . '/(?P<id>[\d]+)',
				array(
					array(
						'methods'             => 'GET',
						'callback'            => self::guarded(
							function ( $request ) use ( $entity ) {
								return AA_Api::get_item( $entity, $request );
							}
						),
						'permission_callback' => '__return_true',
					),
					array(
						'methods'             => 'PUT',
						'callback'            => self::guarded(
							function ( $request ) use ( $entity ) {
								return AA_Api::update_item( $entity, $request );
							}
						),
						'permission_callback' => '__return_true',
					),
				)
			);
		}
	}

	private static function paging_args() {
		return array(
			'page'     => array(
				'type'              => 'integer',
				'minimum'           => 1,
				'validate_callback' => 'rest_validate_request_arg',
			),
			'per_page' => array(
				'type'              => 'integer',
				'minimum'           => 1,
				'maximum'           => 100,
				'validate_callback' => 'rest_validate_request_arg',
			),
		);
	}

	public static function validate_gmt( $value, $request, $param ) {
		if ( null === AA_Entities::parse_gmt( $value ) ) {
			return new WP_Error( 'rest_invalid_date', sprintf( '%s must be a GMT date YYYY-MM-DDTHH:MM:SS (optionally with Z).', $param ) );
		}
		return true;
	}

	public static function validate_after_id( $value, $request, $param ) {
		$valid = rest_validate_request_arg( $value, $request, $param );
		if ( is_wp_error( $valid ) ) {
			return $valid;
		}
		if ( null === $request->get_param( 'modified_after' ) ) {
			return new WP_Error( 'rest_missing_dependency', 'after_id is only allowed together with modified_after.' );
		}
		return true;
	}

	public static function validate_include( $value, $request, $param ) {
		// Empty is allowed: no record, only the change log's next entries (§5.7).
		if ( ! is_string( $value ) || ! preg_match( '/^([1-9]\d{0,19}(,[1-9]\d{0,19})*)?$/', $value ) ) {
			return new WP_Error( 'rest_invalid_type', 'include must be a comma-separated list of positive integer ids.' );
		}
		if ( count( explode( ',', $value ) ) > self::MAX_INCLUDE ) {
			return new WP_Error( 'rest_out_of_bounds', sprintf( 'include lists at most %d ids.', self::MAX_INCLUDE ) );
		}
		return true;
	}

	/** Wraps a callback so an unexpected PHP error becomes 500 association_sync_internal_error. */
	private static function guarded( $callback ) {
		return function ( $request ) use ( $callback ) {
			try {
				return call_user_func( $callback, $request );
			} catch ( Throwable $e ) {
				error_log( 'association-app: ' . $e ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions
				return new WP_Error( 'association_sync_internal_error', 'Internal error in the Association App plugin.', array( 'status' => 500 ) );
			}
		};
	}

	/**
	 * Core answers OPTIONS on every route with the route's description (rest_pre_dispatch,
	 * priority 10), without a key. The contract has GET and PUT only: any other method is
	 * rest_no_route (§3), whichever URL family it came through.
	 */
	public static function no_options( $result, $server, $request ) {
		if ( 'OPTIONS' !== $request->get_method() || ! self::ours( $request ) ) {
			return $result;
		}
		return new WP_Error( 'rest_no_route', __( 'No route was found matching the URL and request method.' ), array( 'status' => 404 ) ); // phpcs:ignore WordPress.WP.I18n.MissingArgDomain -- core's own message, byte for byte
	}

	// ------------------------------------------------------------------ checks 2-4 of §2.3

	/**
	 * Core validates args before permission callbacks; this filter runs after that validation and
	 * replaces its pending error with the switch/key/rate-limit error, so those come first (§2.3).
	 */
	public static function before_callbacks( $response, $handler, $request ) {
		if ( ! self::ours( $request ) ) {
			return $response;
		}
		if ( ! AA_Settings::enabled() ) {
			return new WP_Error( 'association_sync_disabled', 'The Association App sync API is switched off in the plugin settings.', array( 'status' => 403 ) );
		}
		$key = (string) $request->get_header( 'x_association_sync_key' );
		if ( '' === trim( $key ) ) {
			return new WP_Error( 'association_sync_missing_key', 'The X-Association-Sync-Key header is missing.', array( 'status' => 401 ) );
		}
		if ( ! AA_Settings::key_matches( $key ) ) {
			return new WP_Error( 'association_sync_invalid_key', 'The sync key is not valid.', array( 'status' => 401 ) );
		}
		$wait = AA_Settings::rate_limit_wait();
		if ( $wait > 0 ) {
			return new WP_Error(
				'association_sync_rate_limited',
				sprintf( 'Too many requests. Retry after %d seconds.', $wait ),
				array(
					'status'      => 429,
					'retry_after' => $wait,
				)
			);
		}
		return $response;
	}

	/** Headers of every answer of ours, errors included (§2.5). */
	public static function post_dispatch( $response, $server, $request ) {
		if ( ! self::ours( $request ) || ! $response instanceof WP_HTTP_Response ) {
			return $response;
		}
		if ( ! defined( 'DONOTCACHEPAGE' ) ) {
			define( 'DONOTCACHEPAGE', true );
		}
		foreach ( wp_get_nocache_headers() as $name => $value ) {
			if ( $value ) {
				$response->header( $name, $value );
			}
		}
		$response->header( 'Cache-Control', 'no-cache, must-revalidate, max-age=0, no-store, private' );
		$response->header( 'X-Association-Contract-Version', (string) ASSOCIATION_APP_CONTRACT_VERSION );
		// The platform paces itself to these instead of running into 429s (§12).
		foreach ( AA_Settings::rate_limit_headers() as $name => $value ) {
			$response->header( $name, $value );
		}
		$data = $response->get_data();
		if ( 429 === $response->get_status() && is_array( $data ) && isset( $data['data']['retry_after'] ) ) {
			$response->header( 'Retry-After', (string) $data['data']['retry_after'] );
		}
		return $response;
	}

	// ------------------------------------------------------------------ handlers

	public static function ping() {
		return array(
			'plugin'                   => 'association-app',
			'plugin_version'           => ASSOCIATION_APP_VERSION,
			'contract_version'         => ASSOCIATION_APP_CONTRACT_VERSION,
			'site_name'                => get_bloginfo( 'name' ),
			'site_url'                 => site_url(),
			'home_url'                 => home_url(),
			'timezone'                 => wp_timezone_string(),
			'gmt_offset'               => (float) get_option( 'gmt_offset' ),
			'wordpress_version'        => get_bloginfo( 'version' ),
			'entity_types'             => AA_Settings::entity_types(),
			'max_per_page'             => 100,
			'deletions_retention_days' => AA_Settings::RETENTION_DAYS,
			'server_time_gmt'          => gmdate( 'Y-m-d\TH:i:s' ),
			'push'                     => true, // §14: POST push subscribes the platform
			'rate_limit'               => array(
				'requests'       => AA_Settings::rate_limit(), // 0: no limit
				'window_seconds' => AA_Settings::rate_window(),
			),
		);
	}

	private static function paging( $request ) {
		$page     = null === $request->get_param( 'page' ) ? 1 : (int) $request->get_param( 'page' );
		$per_page = null === $request->get_param( 'per_page' ) ? 100 : (int) $request->get_param( 'per_page' );
		return array( $page, $per_page );
	}

	private static function list_response( $items, $total, $page, $per_page ) {
		$total_pages = (int) ceil( $total / $per_page );
		$response    = new WP_REST_Response(
			array(
				'items'       => $items,
				'page'        => $page,
				'per_page'    => $per_page,
				'total'       => $total,
				'total_pages' => $total_pages,
			)
		);
		$response->header( 'X-WP-Total', (string) $total );
		$response->header( 'X-WP-TotalPages', (string) $total_pages );
		return $response;
	}

	public static function list_items( $entity, $request ) {
		list( $page, $per_page ) = self::paging( $request );
		$after                   = $request->get_param( 'modified_after' );
		$after                   = null === $after ? null : AA_Entities::parse_gmt( $after );
		$after_id                = null === $request->get_param( 'after_id' ) ? null : (int) $request->get_param( 'after_id' );
		$include                 = $request->get_param( 'include' );
		$include                 = null === $include ? null : array_map( 'intval', array_filter( explode( ',', $include ) ) );
		// Read before the records: an entry settled now is older than what the page shows.
		$head                    = AA_Changes::head();
		list( $items, $total )   = AA_Entities::list_page( $entity, $page, $per_page, $after, $after_id, $include );
		$response                = self::list_response( $items, $total, $page, $per_page );
		$data                    = $response->get_data();
		// Contract 1.2 (§5.7): the site's clock and the change log's position, on every page.
		$data['server_time_gmt'] = gmdate( 'Y-m-d\TH:i:s' );
		$data['change_seq']      = $head;
		$deleted_since           = $request->get_param( 'deleted_since' );
		if ( null !== $deleted_since ) {
			list( $deleted, $more ) = AA_Deletions::since( $entity, AA_Entities::parse_gmt( $deleted_since ), self::MAX_INLINE_DELETIONS );
			$data['deleted']        = $deleted;
			$data['deleted_more']   = $more;
		}
		$changes_after = $request->get_param( 'changes_after' );
		if ( null !== $changes_after ) {
			list( $changed, $next, $more ) = AA_Changes::after( $entity, (int) $changes_after, $head );
			$data['changed']               = $changed;
			$data['changed_next']          = $next;
			$data['changed_more']          = $more;
			$data['change_log_from']       = AA_Changes::pruned();
		}
		$response->set_data( $data );
		return $response;
	}

	private static function not_found( $entity, $id ) {
		return new WP_Error(
			'association_sync_not_found',
			sprintf( 'No %s with id %d.', $entity, $id ),
			array(
				'status'      => 404,
				'entity_type' => $entity,
				'id'          => $id,
			)
		);
	}

	public static function get_item( $entity, $request ) {
		$id     = (int) $request['id'];
		$record = AA_Entities::get_record( $entity, $id );
		return null === $record ? self::not_found( $entity, $id ) : $record;
	}

	private static function invalid_params( $errors ) {
		$params  = array();
		$details = array();
		foreach ( $errors as $key => $error ) {
			$params[ $key ]  = $error[1];
			$details[ $key ] = array(
				'code'    => $error[0],
				'message' => $error[1],
				'data'    => null,
			);
		}
		return new WP_Error(
			'rest_invalid_param',
			sprintf( 'Invalid parameter(s): %s', implode( ', ', array_keys( $errors ) ) ),
			array(
				'status'  => 400,
				'params'  => $params,
				'details' => $details,
			)
		);
	}

	/** PUT: validate (5) → exists (6) → if_unmodified_since (7) → cross-field rules → write (§7). */
	public static function update_item( $entity, $request ) {
		$id  = (int) $request['id'];
		$raw = (string) $request->get_body();
		if ( strlen( $raw ) > self::MAX_BODY_BYTES ) {
			return self::invalid_params( array( 'body' => array( 'rest_too_large', 'The request body is larger than 1 MiB (contract §12).' ) ) );
		}
		$body = json_decode( $raw );
		if ( ! is_object( $body ) ) {
			return new WP_Error( 'rest_invalid_json', 'The request body must be a JSON object.', array( 'status' => 400 ) );
		}
		list( $values, $since, $errors ) = AA_Entities::validate_body( $entity, $body );
		if ( $errors ) {
			return self::invalid_params( $errors );
		}
		$current = AA_Entities::get_record( $entity, $id );
		if ( null === $current ) {
			return self::not_found( $entity, $id );
		}
		if ( null !== $since && strcmp( str_replace( 'T', ' ', $current['modified_gmt'] ), $since ) > 0 ) {
			return new WP_Error(
				'association_sync_conflict',
				sprintf( 'The record was modified in WordPress after %s.', str_replace( ' ', 'T', $since ) ),
				array(
					'status'       => 409,
					'modified_gmt' => $current['modified_gmt'],
					'current'      => $current,
				)
			);
		}
		$errors = AA_Entities::cross_field_errors( $entity, $current, $values );
		if ( $errors ) {
			return self::invalid_params( $errors );
		}
		// Writes run as the sync user, so KSES follows that user's unfiltered_html (§7.3).
		$user_id = AA_Settings::sync_user_id();
		if ( ! $user_id || ! get_userdata( $user_id ) ) {
			$admins  = get_users(
				array(
					'role'   => 'administrator',
					'number' => 1,
					'fields' => 'ID',
				)
			);
			$user_id = $admins ? (int) $admins[0] : 0;
		}
		wp_set_current_user( $user_id );
		$result = AA_Entities::apply( $entity, $id, $values );
		if ( is_wp_error( $result ) ) {
			return new WP_Error( 'association_sync_internal_error', $result->get_error_message(), array( 'status' => 500 ) );
		}
		return AA_Entities::get_record( $entity, $id );
	}

	public static function deletions( $request ) {
		global $wpdb;
		list( $page, $per_page ) = self::paging( $request );
		$table                   = AA_Deletions::table();
		$types                   = AA_Settings::entity_types();
		if ( ! $types ) {
			return self::list_response( array(), 0, $page, $per_page );
		}
		$placeholders = implode( ',', array_fill( 0, count( $types ), '%s' ) );
		$where        = $wpdb->prepare( "entity_type IN ({$placeholders})", $types ); // phpcs:ignore WordPress.DB.PreparedSQL
		$since        = $request->get_param( 'since' );
		if ( null !== $since ) {
			$where .= $wpdb->prepare( ' AND deleted_gmt > %s', AA_Entities::parse_gmt( $since ) );
		}
		$total = (int) $wpdb->get_var( "SELECT COUNT(*) FROM {$table} WHERE {$where}" ); // phpcs:ignore WordPress.DB.PreparedSQL
		$items = array();
		if ( $total > ( $page - 1 ) * $per_page ) {
			$rows = $wpdb->get_results(
				$wpdb->prepare(
					"SELECT entity_type, object_id, deleted_gmt FROM {$table} WHERE {$where} ORDER BY deleted_gmt ASC, object_id ASC, entity_type ASC, entry_id ASC LIMIT %d, %d", // phpcs:ignore WordPress.DB.PreparedSQL
					( $page - 1 ) * $per_page,
					$per_page
				)
			);
			foreach ( $rows as $row ) {
				$items[] = array(
					'entity_type' => $row->entity_type,
					'id'          => (int) $row->object_id,
					'deleted_gmt' => str_replace( ' ', 'T', $row->deleted_gmt ),
				);
			}
		}
		return self::list_response( $items, $total, $page, $per_page );
	}
}
