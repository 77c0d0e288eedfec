<?php
/**
 * Push (contract §15): tells the platforms subscribed to this site that records changed, so
 * an edit reaches them in seconds instead of at their next scheduled sync.
 *
 * A platform subscribes with POST push {url, secret[, test]} (key-guarded like every route).
 * When the change log or the deletions log records something, one signed POST per
 * subscription is sent when the request ends (the shutdown hook, non-blocking), so an editor
 * never waits for it and a request that changes 50 records sends one push, not 50. The push
 * says only "this site has changes": the platform reads what changed through the API.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

class AA_Push {

	/** {url: secret} of every subscribed platform connector. */
	const OPT_SUBSCRIPTIONS = 'association_app_push_subscriptions';
	/** Several connectors may share one site (split by entity type); beyond this, oldest go. */
	const MAX_SUBSCRIPTIONS = 20;

	private static $pending = false;

	/** Called by AA_Changes::record() and AA_Deletions::record(). */
	public static function changed() {
		if ( self::$pending ) {
			return;
		}
		self::$pending = true;
		// After the response: WordPress runs shutdown hooks once the request's work is done.
		add_action( 'shutdown', array( __CLASS__, 'send_all' ) );
	}

	public static function send_all() {
		foreach ( self::subscriptions() as $url => $secret ) {
			// blocking => false: the request is written and not waited for (the editor's
			// request is already answered; a slow platform must not hold the PHP worker).
			self::send( $url, $secret, 'changes', false );
		}
	}

	public static function subscriptions() {
		$subscriptions = get_option( self::OPT_SUBSCRIPTIONS, array() );
		return is_array( $subscriptions ) ? $subscriptions : array();
	}

	/** The signed POST (§15.1): HMAC-SHA256 of "{timestamp}." + body with the shared secret. */
	public static function send( $url, $secret, $event, $blocking ) {
		$body  = wp_json_encode( array( 'event' => $event ) );
		$stamp = sprintf( '%.6F', microtime( true ) );
		return wp_remote_post(
			$url,
			array(
				'body'     => $body,
				'blocking' => $blocking,
				'timeout'  => $blocking ? 10 : 1,
				'headers'  => array(
					'Content-Type'                 => 'application/json',
					'X-Association-Push-Timestamp' => $stamp,
					'X-Association-Push-Signature' => hash_hmac( 'sha256', $stamp . '.' . $body, $secret ),
				),
			)
		);
	}

	/** POST push: subscribe {url, secret}; with "test", push once now and say whether it arrived. */
	public static function subscribe( $request ) {
		$body = json_decode( (string) $request->get_body() );
		if ( ! is_object( $body ) ) {
			return new WP_Error( 'rest_invalid_json', 'The request body must be a JSON object.', array( 'status' => 400 ) );
		}
		$url    = isset( $body->url ) && is_string( $body->url ) ? $body->url : '';
		$secret = isset( $body->secret ) && is_string( $body->secret ) ? $body->secret : '';
		// Not wp_http_validate_url(): it refuses private addresses, and a platform on the
		// association's own network is a legitimate subscriber (the key already vouches).
		if ( ! preg_match( '#^https?://[^\s]+$#i', $url ) || '' === $secret ) {
			return new WP_Error( 'rest_invalid_param', 'url (http or https) and secret are required.', array( 'status' => 400 ) );
		}
		$subscriptions = self::subscriptions();
		unset( $subscriptions[ $url ] );
		while ( count( $subscriptions ) >= self::MAX_SUBSCRIPTIONS ) {
			array_shift( $subscriptions );
		}
		$subscriptions[ $url ] = $secret;
		update_option( self::OPT_SUBSCRIPTIONS, $subscriptions, false );
		$answer = array( 'subscribed' => true );
		if ( ! empty( $body->test ) ) {
			$result = self::send( $url, $secret, 'test', true );
			$status = is_wp_error( $result ) ? null : (int) wp_remote_retrieve_response_code( $result );
			$ok     = null !== $status && $status >= 200 && $status < 300;
			$answer['reachable'] = $ok;
			$answer['status']    = $status;
			$answer['error']     = $ok ? '' : ( is_wp_error( $result ) ? $result->get_error_message() : 'the platform answered ' . $status );
		}
		return $answer;
	}
}
